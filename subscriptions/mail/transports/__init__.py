"""Ways of handing mail to a mail server or an ESP."""
