"""Everything that turns a mailing or a notice into bytes on the wire."""
