from cxr.cli import main

# Guarded: a process the SCP spawns (cxr.scp_process) imports this module again and must not run the command.
if __name__ == "__main__":
    main()
