"""HTTP routes, one module per noun: parse -> call the models -> serialise."""
