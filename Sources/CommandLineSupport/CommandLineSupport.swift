// Module CommandLineSupport.
