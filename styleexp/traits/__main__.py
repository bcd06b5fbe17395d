from styleexp.traits.cli import main

main()
