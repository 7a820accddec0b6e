from wingman.cli import main

main()
