"""Local Moka dealer API simulator: CreateMokaPosRequest with every listed error."""
