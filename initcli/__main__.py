from initcli.cli import main

main()
