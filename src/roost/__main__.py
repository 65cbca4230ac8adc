"""`python -m roost ...` (and `torchrun ... -m roost train CONFIG`): the roost CLI."""

from roost.cli.main import main

if __name__ == "__main__":
    main()
