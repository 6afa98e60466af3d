from widf_cli import main

main()
