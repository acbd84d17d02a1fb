"""Building blocks shared by the command line and the in-training tracker."""
