"""Review backends: where people see a gate and where its decision is committed."""
