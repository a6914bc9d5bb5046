"""Pure rule functions of the import (no database, no I/O): easy to read, easy to test."""
