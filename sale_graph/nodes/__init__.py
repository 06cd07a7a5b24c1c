"""The graph's nodes, one module each. Nodes are thin: the arithmetic is in :mod:`sale_graph.scoring`."""
