import sys

from engine.riskconsumer.process import main

sys.exit(main())
