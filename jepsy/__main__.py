from jepsy.cli import main

main()
