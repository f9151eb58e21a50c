from excelnet.cli import main

raise SystemExit(main())
