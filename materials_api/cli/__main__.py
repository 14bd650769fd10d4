from materials_api.cli import main

main()
