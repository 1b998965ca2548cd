"""Detail screens of the terminal UI: ``TurnDetailScreen`` (turn header, call timeline, insights) and
``CallDetailScreen`` (conversation, bodies, stream, HTTP heads, hex). Import them from their modules:
``from heron_tui.screens.turn_detail import TurnDetailScreen``."""
