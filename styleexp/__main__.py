from styleexp.commands import styleexp

styleexp()
