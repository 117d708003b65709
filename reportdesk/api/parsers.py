"""JSON bodies within limits: nesting refused beyond reportdesk.jsonlimits.MAX_DEPTH (Python's
parser would recurse until RecursionError), and strings the database cannot store (a lone
surrogate escape, NUL) refused, all as a 400 parse error."""

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from reportdesk.jsonlimits import MAX_DEPTH, json_problem


class StrictJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(f"JSON parse error - nested deeper than {MAX_DEPTH} levels.") from None
        if problem := json_problem(data):
            raise ParseError(f"JSON parse error - {problem}.")
        return data
