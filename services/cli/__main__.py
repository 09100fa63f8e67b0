"""`python -m services.cli` is the `kopru` command."""

from services.cli import main

main()
