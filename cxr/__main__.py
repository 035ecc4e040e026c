from cxr.cli import main

main()
