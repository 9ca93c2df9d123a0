from aeuf.cli import main

raise SystemExit(main())
