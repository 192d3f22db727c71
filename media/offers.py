"""Checking an SDP offer before any connection is made: what is wrong, in words.

Pure: text in, a summary or `BadOffer` out.  aiortc's own parser is lenient (an empty
string parses) and fails on garbage with whatever the line it reached raises (bare
assertions, unpacking errors, an `AttributeError` on a missing value, a `StopIteration`),
so the offer is checked here first and any such error is turned into `BadOffer`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from media.interface import BadOffer

MAX_OFFER_BYTES = 32 * 1024
VIDEO_CODEC = "video/VP8"
AUDIO_CODEC = "audio/opus"


class Role(StrEnum):
    PUBLISHER = "publisher"  # the citizen: sends video (and audio)
    VIEWER = "viewer"  # staff: receive video and audio, may send audio


_SENDS = frozenset({"sendonly", "sendrecv"})
_RECEIVES = frozenset({"recvonly", "sendrecv"})


@dataclass(frozen=True, slots=True)
class OfferSummary:
    video_direction: str
    audio_direction: str | None  # None when the offer has no audio

    @property
    def sends_audio(self) -> bool:
        return self.audio_direction in _SENDS


def check_offer(text: str, role: Role) -> OfferSummary:
    """The offer's shape, or `BadOffer` naming the problem."""
    if len(text.encode()) > MAX_OFFER_BYTES:
        raise BadOffer(f"the offer is larger than {MAX_OFFER_BYTES} bytes", field="sdp")
    if not text.startswith("v=0"):
        raise BadOffer("the body is not an SDP offer (it must start with 'v=0')", field="sdp")
    from aiortc import sdp  # here: importing aiortc takes a while, and serving starts first

    try:
        description = sdp.SessionDescription.parse(text)
    except Exception as exc:  # any: an AttributeError, a StopIteration, ...
        raise BadOffer(f"the offer is not valid SDP ({exc or type(exc).__name__})",
                       field="sdp") from exc  # fmt: skip
    video = [m for m in description.media if m.kind == "video"]
    audio = [m for m in description.media if m.kind == "audio"]
    other = [m.kind for m in description.media if m.kind not in ("video", "audio")]
    if other:
        raise BadOffer(f"only audio and video are taken, not {', '.join(other)}", field="sdp")
    if not video:
        raise BadOffer("the offer has no video", field="sdp")
    for media in description.media:
        if media.direction is None:  # browsers always say; aiortc cannot answer without
            raise BadOffer(f"the offer's {media.kind} has no direction (sendrecv, sendonly, "
                           "recvonly or inactive)", field="sdp")  # fmt: skip
    if len(video) > 1 or len(audio) > 1:
        raise BadOffer("the offer has more than one video or audio track", field="sdp")
    (v,) = video
    wanted = _SENDS if role is Role.PUBLISHER else _RECEIVES
    if v.direction not in wanted:
        verb = "send" if role is Role.PUBLISHER else "receive"
        raise BadOffer(f"the offer's video must {verb} (direction is {v.direction})", field="sdp")
    if not any(c.mimeType.lower() == VIDEO_CODEC.lower() for c in v.rtp.codecs):
        offered = ", ".join(sorted({c.mimeType for c in v.rtp.codecs})) or "none"
        raise BadOffer(f"no common video codec: the server takes VP8; the offer has {offered}",
                       field="sdp")  # fmt: skip
    audio_direction = None
    if audio:
        (a,) = audio
        if not any(c.mimeType.lower() == AUDIO_CODEC.lower() for c in a.rtp.codecs):
            offered = ", ".join(sorted({c.mimeType for c in a.rtp.codecs})) or "none"
            raise BadOffer(f"no common audio codec: the server takes Opus; the offer has "
                           f"{offered}", field="sdp")  # fmt: skip
        audio_direction = a.direction
    for media in description.media:
        if media.ice is None or not (media.ice.usernameFragment and media.ice.password):
            raise BadOffer("the offer has no ICE username fragment or password", field="sdp")
        if not (media.dtls and media.dtls.fingerprints):
            raise BadOffer("the offer has no DTLS fingerprint", field="sdp")
    return OfferSummary(video_direction=v.direction, audio_direction=audio_direction)


def with_audio_ptime(answer: str, ptime_ms: int) -> str:
    """`answer` asking its peer to send `ptime_ms` of audio per packet (`a=ptime`, RFC
    4566 6; Chrome's Opus encoder follows it), in an audio section that is not refused.

    60 ms instead of a browser's 20 is a third of the audio packets: on a phone's bad
    network, 16 kbit/s less of headers (IP, UDP, RTP and SRTP, ~60 bytes a packet), and
    for the server fewer packets to decrypt, record, encrypt and send, which is most of
    what a call costs it (the bytes barely count).  Its price, 40 ms more delay before a
    word is sent and a lost packet taking 60 ms of speech, is one a call to a dispatcher
    can pay (Opus conceals losses; telephony allows 150 ms mouth to ear)."""
    if not ptime_ms:
        return answer
    newline = "\r\n" if "\r\n" in answer else "\n"
    ends = answer.endswith(newline)
    out: list[str] = []
    in_audio = False
    for line in (answer[: -len(newline)] if ends else answer).split(newline):
        if line.startswith("m="):
            if in_audio:
                out.append(f"a=ptime:{ptime_ms}")
            in_audio = line.startswith("m=audio ") and not line.startswith("m=audio 0 ")
        elif in_audio and line.startswith("a=ptime:"):
            continue  # ours replaces it
        out.append(line)
    if in_audio:
        out.append(f"a=ptime:{ptime_ms}")
    return newline.join(out) + (newline if ends else "")


def audio_ptime(sdp: str) -> int:
    """The audio milliseconds per packet `sdp` asks for (`a=ptime` in its audio
    section, as `with_audio_ptime` writes it); 20, Opus's usual, without one."""
    in_audio = False
    for line in sdp.splitlines():
        if line.startswith("m="):
            in_audio = line.startswith("m=audio ")
        elif in_audio and line.startswith("a=ptime:"):
            return int(line[8:])
    return 20
