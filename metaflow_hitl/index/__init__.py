"""The read cache of decided gates: index segments and the reader over them.

Decisions never read it: every decision reads the gate's own records in the store."""
