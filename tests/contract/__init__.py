"""Contract tests: the real ``ChatOpenAI`` against a loopback server that speaks real serving stacks' wire formats."""
