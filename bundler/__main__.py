from bundler.support.signals import install

install()  # before the heavier imports: a signal in the first instant still gives 130/143

from bundler.cli import main  # noqa: E402

raise SystemExit(main())
