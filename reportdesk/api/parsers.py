"""JSON bodies that are text: a `\\ud800` escape (half of a UTF-16 pair) parses in Python but
is no character, cannot be stored or echoed back in an error, so it is refused up front."""

import json

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class StrictJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        try:
            json.dumps(data, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise ParseError("JSON parse error - the body contains an unpaired surrogate escape (\\ud800–\\udfff).") from None
        return data
