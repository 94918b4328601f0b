"""Audio helpers: cut and play the cited moment of a recording (`grace play`)."""

from grace_pipelines.audio.clip import Window, clip_wav, decode_window, find_player, play_wav

__all__ = ["Window", "clip_wav", "decode_window", "find_player", "play_wav"]
