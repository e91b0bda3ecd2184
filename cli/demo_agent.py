"""The scripted agent of `magsag demo`: acts like a coding agent, without an account.

It reads MAGSAG_TASK, waits a moment as an agent would think, then writes the files
that task asks for. It runs as `python demo_agent.py <prompt>` in the task's worktree.
"""

import os
import sys
import time
from pathlib import Path

FILES = {
    "greeting": {
        "app/greeting.py": 'def greet(name: str) -> str:\n    return f"Hello, {name}!"\n',
    },
    "arithmetic": {
        "app/arithmetic.py": "def add(a: int, b: int) -> int:\n    return a + b\n",
    },
    "docs": {
        "docs/usage.md": "# Usage\n\n"
        "`from app.greeting import greet`\n`from app.arithmetic import add`\n",
    },
    "test-greeting": {
        "tests/test_greeting.py": "import unittest\n\nfrom app.greeting import greet\n\n\n"
        "class GreetingTest(unittest.TestCase):\n    def test_greet(self):\n"
        '        self.assertEqual(greet("magsag"), "Hello, magsag!")\n',
    },
    "test-arithmetic": {
        "tests/test_arithmetic.py": "import unittest\n\nfrom app.arithmetic import add\n\n\n"
        "class ArithmeticTest(unittest.TestCase):\n    def test_add(self):\n"
        "        self.assertEqual(add(2, 3), 5)\n",
    },
}


def main() -> int:
    task = os.environ["MAGSAG_TASK"]
    prompt = sys.argv[1] if len(sys.argv) > 1 else sys.stdin.read()
    print(f"[demo agent] task {task}: {prompt}", flush=True)
    time.sleep(float(os.environ.get("MAGSAG_DEMO_THINK_SECONDS", "1.5")))
    if task == "changelog":
        modules = sorted(str(p) for p in Path("app").glob("*.py") if p.name != "__init__.py")
        lines = "".join(f"- {m}\n" for m in modules)
        Path("CHANGELOG.md").write_text(f"# Changelog\n\n## 0.2.0\n\n{lines}")
        print("[demo agent] wrote CHANGELOG.md", flush=True)
        return 0
    for path, content in FILES[task].items():
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(content)
        print(f"[demo agent] wrote {path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
