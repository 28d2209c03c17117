// Module SafeTensors.
