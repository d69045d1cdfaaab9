"""The benchmark (`make bench`) and the service variants it compares."""
