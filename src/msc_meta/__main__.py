from msc_meta.cli import main

if __name__ == "__main__":
    main()
