"""MKK MKS Online: the REST client, result-code outcomes, the runtime every MKK-calling
service shares (token cache, service hours), settings, token claims and encryption,
senderReference and zip password rules."""
