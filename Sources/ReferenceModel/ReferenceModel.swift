// Module ReferenceModel.
