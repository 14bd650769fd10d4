from materials_api.cli import main

if __name__ == "__main__":  # not again in a spawned child process (it imports this module)
    main()
