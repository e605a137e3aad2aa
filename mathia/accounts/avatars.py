"""Avatar images: checked with Pillow, then re-encoded, so only a clean square PNG is kept.

Re-encoding drops whatever else the upload carried (metadata, a script in a comment, a
second file appended to the image); the size and pixel limits stop memory-hungry uploads.
"""

from __future__ import annotations

import io
import warnings

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.template.defaultfilters import filesizeformat
from PIL import Image, ImageOps, UnidentifiedImageError

from mathia.core.errors import InvalidInput

AVATAR_PIXELS = 256
ALLOWED_FORMATS = {"PNG", "JPEG", "GIF", "WEBP"}
MAX_SOURCE_PIXELS = 40_000_000  # about 6300 x 6300: more is a decompression bomb, not a photo


def avatar_clean(upload: UploadedFile) -> ContentFile[bytes]:
    """A 256x256 PNG made from ``upload``, or InvalidInput(field="avatar") saying what is wrong."""
    limit = settings.AVATAR_MAX_BYTES
    if upload.size is None or upload.size > limit:
        raise InvalidInput(
            f"The image is too large: at most {filesizeformat(limit)}, please.",
            code="avatar_too_large",
            field="avatar",
        )
    data = upload.read()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                image_format = probe.format
                width, height = probe.size
                probe.verify()  # structure and checksums, without decoding every pixel
            if image_format not in ALLOWED_FORMATS:
                raise InvalidInput("Use a PNG, JPEG, GIF or WebP image.", code="avatar_unsupported", field="avatar")
            if width * height > MAX_SOURCE_PIXELS:
                raise InvalidInput(
                    "The image has too many pixels; use a smaller one.", code="avatar_too_large", field="avatar"
                )
            with Image.open(io.BytesIO(data)) as image:
                image.seek(0)  # the first frame of an animation
                square = ImageOps.fit(ImageOps.exif_transpose(image).convert("RGBA"), (AVATAR_PIXELS, AVATAR_PIXELS))
    except InvalidInput:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InvalidInput("That file is not an image we can read.", code="avatar_invalid", field="avatar") from None
    except (OSError, ValueError, SyntaxError, EOFError):
        raise InvalidInput("That image is damaged or incomplete.", code="avatar_invalid", field="avatar") from None
    out = io.BytesIO()
    square.save(out, format="PNG", optimize=True)
    return ContentFile(out.getvalue())
