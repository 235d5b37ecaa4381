"""ERP integration: order import (JSON, B2MML) and confirmation export (pull feed, push)."""
