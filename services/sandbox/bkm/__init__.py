"""Local BKM Express simulator: initializePayment, QueryPaymentResult, requestMerchInfo
calls to the merchant, and a "pay" admin action that posts signed confirmations."""
