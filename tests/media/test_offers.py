"""`media.offers.with_audio_ptime`: the answers ask for 60 ms audio packets."""

from __future__ import annotations

from media.offers import audio_ptime, with_audio_ptime

ANSWER = "\r\n".join([
    "v=0", "o=- 1 1 IN IP4 0.0.0.0", "s=-", "t=0 0",
    "m=video 9 UDP/TLS/RTP/SAVPF 97", "c=IN IP4 0.0.0.0", "a=rtpmap:97 VP8/90000",
    "m=audio 9 UDP/TLS/RTP/SAVPF 96", "c=IN IP4 0.0.0.0", "a=rtpmap:96 opus/48000/2",
    "a=ptime:20", "",
])  # fmt: skip


def _audio_section(sdp: str) -> list[str]:
    lines = sdp.split("\r\n")
    start = next(i for i, line in enumerate(lines) if line.startswith("m=audio"))
    return lines[start:]


def test_the_audio_section_asks_for_the_ptime_once() -> None:
    answer = with_audio_ptime(ANSWER, 60)
    assert answer.endswith("\r\n")
    audio = _audio_section(answer)
    assert [line for line in audio if line.startswith("a=ptime")] == ["a=ptime:60"]
    assert "a=ptime" not in answer.split("m=audio")[0]  # not in the video section
    assert (audio_ptime(answer), audio_ptime(ANSWER)) == (60, 20)


def test_audio_before_video_and_lf_only() -> None:
    text = "v=0\nm=audio 9 RTP/SAVPF 96\na=rtpmap:96 opus/48000/2\nm=video 9 RTP/SAVPF 97\n"
    assert with_audio_ptime(text, 40) == (
        "v=0\nm=audio 9 RTP/SAVPF 96\na=rtpmap:96 opus/48000/2\na=ptime:40\n"
        "m=video 9 RTP/SAVPF 97\n"
    )


def test_zero_and_refused_audio_change_nothing() -> None:
    assert with_audio_ptime(ANSWER, 0) == ANSWER
    refused = ANSWER.replace("m=audio 9 ", "m=audio 0 ").replace("a=ptime:20\r\n", "")
    assert with_audio_ptime(refused, 60) == refused
