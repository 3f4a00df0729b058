"""Re-take the gallery screenshots in this folder with headless Chromium.

    uv run python services/notifications/docs/take_screenshots.py

Renders the gallery (``cairn-notifications render-all``) into a temporary folder and
swaps the sample marketplace's logo URL (an ``.example`` host that does not exist) for a
stand-in logo inlined as a data URI, so the screenshots show a logo without internet.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
import tempfile
from pathlib import Path

from cairn_notifications.config import Settings
from cairn_notifications.service.gallery import SHOWCASES, render_gallery

HERE = Path(__file__).resolve().parent
SHOTS = {
    "acme-talent/proposal_submitted.customer": (720, 820),
    "acme-talent/milestone_funded.freelancer": (720, 700),
    "acme-talent/dispute_opened.operators": (720, 900),
    "kumo-crafts/milestone_released.freelancer": (720, 800),
    "kumo-crafts/milestone_payment_failed.customer": (720, 720),
}
LOGO = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="120" height="32" viewBox="0 0 120 32">'
    b'<rect width="32" height="32" rx="7" fill="#ffffff"/>'
    b'<path d="M8 24 L16 8 L24 24 Z" fill="#0a7cff"/>'
    b'<text x="40" y="22" font-family="sans-serif" font-size="15" font-weight="700" '
    b'fill="#ffffff">ACME</text></svg>'
)


def main() -> None:
    """Render the gallery and screenshot the pages in SHOTS."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("needs chromium (Debian: apt-get install chromium)")
    logos = [s.brand.logo_url for s in SHOWCASES if s.brand.logo_url]
    inline = "data:image/svg+xml;base64," + base64.b64encode(LOGO).decode()
    out = HERE / "screenshots"
    out.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        gallery = Path(tmp)
        render_gallery(gallery, Settings())
        for page, (width, height) in SHOTS.items():
            source = gallery / f"{page}.html"
            html = source.read_text(encoding="utf-8")
            for logo in logos:
                html = html.replace(logo, inline)
            source.write_text(html, encoding="utf-8")
            target = out / (page.replace("/", "--") + ".png")
            subprocess.run(  # noqa: S603 - fixed arguments, our own files
                [
                    chromium,
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--hide-scrollbars",
                    f"--window-size={width},{height}",
                    f"--screenshot={target}",
                    source.as_uri(),
                ],
                check=True,
                capture_output=True,
                timeout=60,
            )
            print(target.relative_to(HERE))


if __name__ == "__main__":
    main()
