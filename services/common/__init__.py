"""What every service shares, one package per concern (kafka, stores, mkk, bkm, moka,
signing, observability); at the top only what is truly common: settings, errors, the
service builder and the contracts generator."""
