"""Audio helpers: cut and play the cited moment of a recording (`grace play`)."""

from grace_pipelines.audio.clip import (
    Citation,
    Window,
    clip_wav,
    decode_window,
    find_player,
    parse_citation,
    play_wav,
)

__all__ = ["Citation", "Window", "clip_wav", "decode_window", "find_player", "parse_citation", "play_wav"]
