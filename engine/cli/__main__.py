from engine.cli.program import main

raise SystemExit(main())
