"""The staff area: campaign teams' pages, at STAFF_PATH (default /staff/)."""
