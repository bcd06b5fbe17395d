from styleexp.cli import main

main()
