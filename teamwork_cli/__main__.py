"""`python -m teamwork_cli ...` (also what `accelerate launch -m teamwork_cli ...` runs)."""

from teamwork_cli.cli.entry import console

if __name__ == "__main__":
    console()
