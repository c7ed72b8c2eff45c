"""Ways of handing a mailing to a mail server or an ESP: base (the protocol and the
faults), smtp, anymail (one call per person, and what batches share), merge and mailjet
(many people per call), sparkpost (its template language), choose (which one a mailer gets)."""
