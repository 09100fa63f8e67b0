"""BKM Express: the outgoing client (initializePayment, QueryPaymentResult), field
signatures (SHA-256 with RSA over concatenated fields) and the SOAP merchInfo wire."""
