// placeholder: replaced by the live desk script
