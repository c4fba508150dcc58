"""Everything people read: Markdown, approval files, bodies, replies, tables, console text."""
