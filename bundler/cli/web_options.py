"""``assemble --web`` and its settings (DESIGN §3): declared here, read by ``commands_assemble``."""

from __future__ import annotations

from typing import Annotated

import typer

from bundler.media.encode import WEBP_MAX_SIDE, WebSettings

_DEFAULTS = WebSettings()

WebOption = Annotated[
    bool,
    typer.Option(
        "--web",
        help="Build for viewers on a network: key frames as WebP, narration as AAC in M4A "
        "(needs story-bundler[web]); unchanged sources are never encoded twice.",
    ),
]
WebQualityOption = Annotated[
    int,
    typer.Option("--web-quality", min=0, max=100, help="With --web: WebP quality of key frames (0-100)."),
]
WebMaxSideOption = Annotated[
    int,
    typer.Option("--web-max-side", min=16, max=WEBP_MAX_SIDE, help="With --web: longest side of key frames, px."),
]
WebAudioOption = Annotated[
    int,
    typer.Option("--web-audio-kbps", min=8, max=256, help="With --web: AAC bit rate per channel, kbit/s."),
]


def web_settings(web: bool, quality: int, max_side: int, audio_kbps: int) -> WebSettings | None:
    """The settings of ``--web``, or None; with ``--web`` the extra must be importable (exit 3 now,
    before any work). A setting given without ``--web`` is a usage error: it would do nothing."""
    if not web:
        if (quality, max_side, audio_kbps) != (_DEFAULTS.image_quality, _DEFAULTS.max_side, _DEFAULTS.audio_kbps):
            raise typer.BadParameter("the --web-* settings need --web", param_hint="--web")
        return None
    from bundler.media.encode import require_web_extra

    require_web_extra()
    return WebSettings(image_quality=quality, max_side=max_side, audio_kbps=audio_kbps)


DEFAULT_QUALITY = _DEFAULTS.image_quality
DEFAULT_MAX_SIDE = _DEFAULTS.max_side
DEFAULT_AUDIO_KBPS = _DEFAULTS.audio_kbps
