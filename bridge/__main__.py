from bridge.cli import main

main(prog_name="python -m bridge")
