"""``python -m lottery_mia.config > workflow/schemas/config.schema.json``."""

import json

from . import schema

print(json.dumps(schema(), indent=1, sort_keys=True))
